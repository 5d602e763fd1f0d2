#define _GNU_SOURCE
#include "kv_system.h"
#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int kv_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int kv_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int kv_epoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
    return kv_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events, token);
}

int kv_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token) {
    return kv_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, events, token);
}

int kv_epoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int kv_epoll_wait(int epfd, kv_event *out, int max_events, int timeout_ms) {
    struct epoll_event events[256];
    if (max_events > 256) max_events = 256;
    int n = epoll_wait(epfd, events, max_events, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = events[i].events;
        out[i].token = events[i].data.u64;
    }
    return n;
}

int kv_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int kv_eventfd_signal(int fd) {
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the loop will wake anyway.
    ssize_t r = write(fd, &one, sizeof one);
    return r == sizeof one || errno == EAGAIN ? 0 : -1;
}

void kv_eventfd_drain(int fd) {
    uint64_t value;
    (void)read(fd, &value, sizeof value);
}

__attribute__((noinline)) uint64_t kv_thread_id(void) { return (uint64_t)pthread_self(); }

int kv_current_cpu(void) { return sched_getcpu(); }

int kv_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int kv_online_cpus(void) { return (int)sysconf(_SC_NPROCESSORS_ONLN); }

int kv_allowed_cpus(int *out, int max) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(getpid(), sizeof set, &set) != 0) return -1;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++) {
        if (CPU_ISSET(cpu, &set)) out[n++] = cpu;
    }
    return n;
}

int kv_thread_tid(void) { return (int)gettid(); }

int kv_widen_inherited_pinning(const int *keep, int count) {
    cpu_set_t wide;
    CPU_ZERO(&wide);
    if (sched_getaffinity(getpid(), sizeof wide, &wide) != 0 || CPU_COUNT(&wide) < 2) return 0;
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -1;
    int widened = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        int tid = atoi(entry->d_name);
        if (tid <= 0) continue;
        int kept = 0;
        for (int i = 0; i < count; i++) kept |= keep[i] == tid;
        if (kept) continue;
        cpu_set_t current;
        CPU_ZERO(&current);
        if (sched_getaffinity(tid, sizeof current, &current) != 0 || CPU_COUNT(&current) != 1) continue;
        if (sched_setaffinity(tid, sizeof wide, &wide) == 0) widened++;
    }
    closedir(dir);
    return widened;
}

int kv_thread_cpu_count(int tid) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(tid, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

uint64_t kv_monotonic_nanos(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void kv_set_thread_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, 15);
    short_name[15] = 0;
    pthread_setname_np(pthread_self(), short_name);
}

static __thread void *kv_loop_slot;
__attribute__((noinline)) void *kv_thread_loop(void) { return kv_loop_slot; }
void kv_set_thread_loop(void *loop) { kv_loop_slot = loop; }

void kv_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static int kv_ipv4(const char *host, uint16_t port, struct sockaddr_in *addr) {
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int kv_tcp_listen(const char *host, uint16_t port, int backlog) {
    struct sockaddr_in addr;
    if (kv_ipv4(host, port, &addr) != 0) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, backlog) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int kv_tcp_accept(int listen_fd) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int kv_tcp_connect(const char *host, uint16_t port, int *in_progress) {
    struct sockaddr_in addr;
    *in_progress = 0;
    if (kv_ipv4(host, port, &addr) != 0) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (errno == EINPROGRESS) {
            *in_progress = 1;
            return fd;
        }
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int kv_socket_local_port(int fd) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return -1;
    return ntohs(addr.sin_port);
}

int kv_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -1;
    return err;
}

long kv_send(int fd, const void *bytes, size_t count) { return send(fd, bytes, count, MSG_NOSIGNAL); }

long kv_recv(int fd, void *bytes, size_t count) { return recv(fd, bytes, count, 0); }

int kv_socket_abort_on_close(int fd) {
    struct linger l = {1, 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

int kv_socket_set_receive_buffer(int fd, int bytes) {
    return setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

int kv_socket_set_send_buffer(int fd, int bytes) {
    return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

// libnuma entry points, resolved once with dlsym; NULL when the library is missing.
static int (*numa_available_fn)(void);
static int (*numa_max_node_fn)(void);
static int (*numa_node_of_cpu_fn)(int);
static int (*numa_num_configured_cpus_fn)(void);
static void (*numa_set_preferred_fn)(int);
static pthread_once_t numa_once = PTHREAD_ONCE_INIT;
static int numa_usable;

static void kv_numa_open(void) {
    void *lib = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    numa_available_fn = (int (*)(void))dlsym(lib, "numa_available");
    numa_max_node_fn = (int (*)(void))dlsym(lib, "numa_max_node");
    numa_node_of_cpu_fn = (int (*)(int))dlsym(lib, "numa_node_of_cpu");
    numa_num_configured_cpus_fn = (int (*)(void))dlsym(lib, "numa_num_configured_cpus");
    numa_set_preferred_fn = (void (*)(int))dlsym(lib, "numa_set_preferred");
    numa_usable = numa_available_fn && numa_max_node_fn && numa_node_of_cpu_fn &&
                  numa_num_configured_cpus_fn && numa_available_fn() >= 0;
}

int kv_numa_load(void) {
    pthread_once(&numa_once, kv_numa_open);
    return numa_usable;
}

int kv_numa_max_node(void) { return kv_numa_load() ? numa_max_node_fn() : -1; }

int kv_numa_node_of_cpu(int cpu) { return kv_numa_load() ? numa_node_of_cpu_fn(cpu) : -1; }

int kv_numa_configured_cpus(void) { return kv_numa_load() ? numa_num_configured_cpus_fn() : -1; }

int kv_numa_prefer_node(int node) {
    if (!kv_numa_load() || !numa_set_preferred_fn) return -1;
    numa_set_preferred_fn(node);
    return 0;
}
