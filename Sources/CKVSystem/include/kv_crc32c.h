#ifndef KV_CRC32C_H
#define KV_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// 1 when the CPU has the SSE4.2 CRC32 instruction, else 0.
int kv_crc32c_hardware_available(void);
/// CRC32C (Castagnoli) with the SSE4.2 instruction; call only when kv_crc32c_hardware_available().
/// `crc` is the running, already-inverted state (start with 0xFFFFFFFF).
uint32_t kv_crc32c_hw(uint32_t crc, const void *data, size_t length);
#endif
