"""Plans a sweep and runs it on the machine's devices."""
