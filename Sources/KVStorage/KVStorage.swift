import KVCore
