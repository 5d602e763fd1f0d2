#ifndef KV_SYSTEM_H
#define KV_SYSTEM_H
// Linux calls that Glibc does not expose to Swift (it is imported without _GNU_SOURCE):
// epoll, eventfd, accept4, thread affinity, an out-of-line thread identity, libnuma via dlopen,
// and the few socket set-up steps KVTransport needs. Every function returns -1 and sets errno
// on failure unless it says otherwise.
#include <stddef.h>
#include <stdint.h>

/// One readiness event, unpacked (Glibc's `epoll_event` imports packed).
typedef struct kv_event {
    uint32_t events;
    uint64_t token;
} kv_event;

enum {
    KV_EV_IN = 0x001,
    KV_EV_OUT = 0x004,
    KV_EV_ERR = 0x008,
    KV_EV_HUP = 0x010,
    KV_EV_RDHUP = 0x2000,
    KV_EV_ET = (int)(1u << 31),
};

int kv_epoll_create(void);
int kv_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int kv_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token);
int kv_epoll_remove(int epfd, int fd);
/// Waits up to `timeout_ms` (-1 = forever); returns the number of events written to `out`.
int kv_epoll_wait(int epfd, kv_event *out, int max_events, int timeout_ms);

/// A non-blocking, close-on-exec eventfd.
int kv_eventfd_create(void);
/// Adds 1 to the eventfd counter (wakes a loop sleeping in epoll_wait).
int kv_eventfd_signal(int fd);
/// Resets the eventfd counter to 0.
void kv_eventfd_drain(int fd);

/// An identity of the calling thread that the compiler cannot cache across `await`
/// (Glibc's `pthread_self` is declared `const`).
uint64_t kv_thread_id(void);
/// The CPU the calling thread runs on now, or -1.
int kv_current_cpu(void);
/// Pins the calling thread to `cpu`; returns 0 or an errno value.
int kv_pin_current_thread(int cpu);
/// Number of online CPUs.
int kv_online_cpus(void);
/// Writes the CPUs this process may run on (the main thread's affinity mask, so a pinned
/// calling thread does not narrow it) to `out`; returns how many, or -1.
int kv_allowed_cpus(int *out, int max);
/// The calling thread's kernel id (gettid).
int kv_thread_tid(void);
/// Threads inherit the affinity of the thread that creates them, so a worker thread that a
/// pinned event-loop thread happens to spawn (the Swift global pool's, say) ends up pinned to
/// that loop's core. This widens every thread of the process that is pinned to a single CPU,
/// except the `count` threads in `keep`, back to the process mask. Returns how many it widened.
int kv_widen_inherited_pinning(const int *keep, int count);
/// How many CPUs thread `tid` of this process may run on, or -1.
int kv_thread_cpu_count(int tid);
/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
uint64_t kv_monotonic_nanos(void);

/// Names the calling thread (at most 15 bytes are kept), for `top -H` and debuggers.
void kv_set_thread_name(const char *name);
/// A per-thread pointer slot (the event loop running on this thread, or NULL).
void *kv_thread_loop(void);
void kv_set_thread_loop(void *loop);

/// Ignores SIGPIPE for the process: a write to a closed socket then fails with EPIPE.
void kv_ignore_sigpipe(void);

/// A non-blocking, close-on-exec TCP socket bound to an IPv4 `host` and listening.
/// SO_REUSEADDR is set; `port` 0 picks an ephemeral port.
int kv_tcp_listen(const char *host, uint16_t port, int backlog);
/// Accepts one connection as a non-blocking, close-on-exec socket with TCP_NODELAY.
int kv_tcp_accept(int listen_fd);
/// Starts a non-blocking connect to an IPv4 `host`. Returns the fd; `*in_progress` is 1
/// when the connection completes later (wait for writability, then read kv_socket_error).
int kv_tcp_connect(const char *host, uint16_t port, int *in_progress);
/// The local port of a bound socket, or -1.
int kv_socket_local_port(int fd);
/// The pending error of a socket (SO_ERROR), 0 if none, or -1.
int kv_socket_error(int fd);
/// send(2) with MSG_NOSIGNAL.
long kv_send(int fd, const void *bytes, size_t count);
/// recv(2).
long kv_recv(int fd, void *bytes, size_t count);
/// Sets SO_LINGER to 0 so close(2) sends RST (used to abort connections, and by tests).
int kv_socket_abort_on_close(int fd);
/// Sets the receive buffer size (tests use it to force partial writes).
int kv_socket_set_receive_buffer(int fd, int bytes);
int kv_socket_set_send_buffer(int fd, int bytes);

/// libnuma, loaded at run time with dlopen("libnuma.so.1"): 1 when it loaded and
/// numa_available() says NUMA is usable, else 0.
int kv_numa_load(void);
/// numa_max_node(), or -1 without libnuma.
int kv_numa_max_node(void);
/// numa_node_of_cpu(cpu), or -1.
int kv_numa_node_of_cpu(int cpu);
/// numa_num_configured_cpus(), or -1.
int kv_numa_configured_cpus(void);
/// numa_set_preferred(node) for the calling thread; 0, or -1 without libnuma.
int kv_numa_prefer_node(int node);
#endif
