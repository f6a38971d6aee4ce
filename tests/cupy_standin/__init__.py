"""The CuPy stand-in (standin.py) and the tests that run the whole package on it, on a CPU."""
