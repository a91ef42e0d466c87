"""Executors that run hooks outside the kernel's threads: the remote contract and Dask."""
