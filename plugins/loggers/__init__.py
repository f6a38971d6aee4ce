"""Built-in loggers: a run sent to TensorBoard or MLflow as it happens (`--log NAME`)."""
