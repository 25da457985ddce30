"""Kubeflow pipelines wired from the components, plus compile and embedded-run helpers."""
