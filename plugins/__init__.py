"""Built-in plugins: cells, datasets, regularisers and optimisers, written against the public API only."""
