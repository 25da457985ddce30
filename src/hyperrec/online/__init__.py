"""Online serving logic, free of any server framework: requests, ranking rules, fallbacks, explanations,
feedback log. ``hyperrec.serving`` wraps it in KServe models."""
