"""Inference: predictions and fold ensembles, interpretation (attention, perturbation, attributions), and
checking a checkpoint's stored numbers (``verify``)."""
