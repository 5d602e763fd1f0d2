import KVRuntime
