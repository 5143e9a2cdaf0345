"""The model, in plain PyTorch and scikit-learn: no Dagster, no Feast, no MLflow imports here.

`columns` says which training-set columns the model reads, `preprocess` fits and applies what
travels with the model, `network` is the PyTorch module, `device` picks CPU or CUDA settings,
`train` fits it with early stopping, `evaluate` scores it beside the baselines, `split` cuts time.
"""
