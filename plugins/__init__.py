"""Built-in plugins: cells, datasets, regularisers, optimisers and loggers, written against the public API only."""
