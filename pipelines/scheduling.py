"""Cluster scheduling settings applied to pipeline tasks (no effect under kfp.local, which warns)."""

from __future__ import annotations

from kfp import dsl, kubernetes

from hyperrec.cluster_settings import GpuConfig


def request_gpu(task: dsl.PipelineTask, gpu: GpuConfig) -> dsl.PipelineTask:
    """Ask for accelerators on the GPU node pool: limit, node selector and a toleration of its taint."""
    if gpu.accelerator_limit == 0:
        return task
    task.set_accelerator_type(gpu.accelerator_type).set_accelerator_limit(gpu.accelerator_limit)
    kubernetes.add_node_selector(task, label_key=gpu.node_selector_key, label_value=gpu.node_selector_value)
    kubernetes.add_toleration(task, key=gpu.toleration_key, operator="Exists", effect="NoSchedule")
    return task
