/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network configuration of a container, read from inside its network
 * namespace: interfaces (name, MAC, flags, MTU), addresses and routes.
 * A short-lived thread joins the namespace: setns(CLONE_NEWNET) moves the
 * calling thread only, so cryo's other threads stay in the host's, and
 * its sockets and /proc/thread-self/net are the container's.  (A forked
 * child did this before; but a fork copies one thread of a process whose
 * write-back thread may be mid-way, and under valgrind the child's exit
 * then reported that thread's memory as lost and failed.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "plugins/container/container.h"
#include "plugins/container/lo-up.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

static json_object *interface_entry(json_object *ifaces, const char *name) {
        json_object *o = cryo_json_get(ifaces, name);
        if (o)
                return o;
        o = json_object_new_object();
        json_object_object_add(o, "addresses", json_object_new_array());
        json_object_object_add(ifaces, name, o);
        return o;
}

static void add_link_facts(json_object *iface, const char *name) {
        struct ifreq ifr = {0};
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0 || strlen(name) >= sizeof(ifr.ifr_name))
                return;
        strcpy(ifr.ifr_name, name);
        if (ioctl(s, SIOCGIFMTU, &ifr) == 0)
                json_object_object_add(iface, "mtu", json_object_new_int(ifr.ifr_mtu));
}

static json_object *read_interfaces(void) {
        json_object *ifaces = json_object_new_object();
        struct ifaddrs *list = NULL;
        if (getifaddrs(&list) < 0)
                return ifaces;
        for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
                json_object *iface = interface_entry(ifaces, ifa->ifa_name);
                json_object_object_add(iface, "up", json_object_new_boolean(ifa->ifa_flags & IFF_UP));
                if (!ifa->ifa_addr)
                        continue;
                int family = ifa->ifa_addr->sa_family;
                if (family == AF_PACKET) {
                        const struct sockaddr_ll *ll = (const struct sockaddr_ll *) ifa->ifa_addr;
                        char mac[3 * 8] = "";
                        bool nonzero = false;
                        for (int i = 0; i < ll->sll_halen && i < 8; i++) {
                                /* "aa" then ":bb": byte i starts at 3i - 1. */
                                size_t at = i ? 3 * (size_t) i - 1 : 0;
                                snprintf(mac + at, sizeof(mac) - at, i ? ":%02x" : "%02x", ll->sll_addr[i]);
                                nonzero = nonzero || ll->sll_addr[i];
                        }
                        if (nonzero)
                                json_object_object_add(iface, "mac", json_object_new_string(mac));
                        add_link_facts(iface, ifa->ifa_name);
                } else if (family == AF_INET || family == AF_INET6) {
                        char addr[INET6_ADDRSTRLEN] = "", out[INET6_ADDRSTRLEN + 8];
                        const void *src =
                                family == AF_INET
                                        ? (const void *) &((struct sockaddr_in *) ifa->ifa_addr)->sin_addr
                                        : (const void *) &((struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr;
                        inet_ntop(family, src, addr, sizeof(addr));
                        int prefix = 0;
                        if (ifa->ifa_netmask) {
                                const unsigned char *m =
                                        family == AF_INET ? (const unsigned char *) &(
                                                                    (struct sockaddr_in *) ifa->ifa_netmask)
                                                                    ->sin_addr
                                                          : (const unsigned char *) &(
                                                                    (struct sockaddr_in6 *) ifa->ifa_netmask)
                                                                    ->sin6_addr;
                                for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
                                        prefix += __builtin_popcount(m[i]);
                        }
                        snprintf(out, sizeof(out), "%s/%d", addr, prefix);
                        json_object_array_add(cryo_json_get(iface, "addresses"),
                                              json_object_new_string(out));
                }
        }
        freeifaddrs(list);
        return ifaces;
}

/* /proc/net/route: hex little-endian IPv4 destination, gateway, mask. */
static json_object *read_routes(void) {
        json_object *routes = json_object_new_array();
        /* /proc/net is the main thread's namespace, not this thread's. */
        _cleanup_fclose_ FILE *f = fopen("/proc/thread-self/net/route", "re");
        char line[512];
        if (!f || !fgets(line, sizeof(line), f))
                return routes;
        while (fgets(line, sizeof(line), f)) {
                char dev[64];
                unsigned dst, gw, flags, mask;
                int refcnt, use, metric;
                if (sscanf(line, "%63s %x %x %x %d %d %d %x", dev, &dst, &gw, &flags, &refcnt, &use, &metric,
                           &mask) != 8)
                        continue;
                char d[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], out[64];
                struct in_addr a = {.s_addr = dst}, b = {.s_addr = gw};
                inet_ntop(AF_INET, &a, d, sizeof(d));
                inet_ntop(AF_INET, &b, g, sizeof(g));
                json_object *r = json_object_new_object();
                snprintf(out, sizeof(out), "%s/%d", d, __builtin_popcount(mask));
                json_object_object_add(r, "destination",
                                       json_object_new_string(dst == 0 && mask == 0 ? "default" : out));
                if (gw)
                        json_object_object_add(r, "gateway", json_object_new_string(g));
                json_object_object_add(r, "device", json_object_new_string(dev));
                json_object_object_add(r, "metric", json_object_new_int(metric));
                json_object_array_add(routes, r);
        }
        return routes;
}

/* Runs fn in a thread of its own inside the network namespace of pid. */
struct in_netns {
        int netns_fd;
        int (*fn)(struct in_netns *job);
        json_object *report;
        int result;
};

static void *in_netns_thread(void *arg) {
        struct in_netns *job = arg;
        job->result = job->fn(job);
        return NULL;
}

/* `what` names the job in an error: "cannot <what> of pid N". */
static int run_in_netns(pid_t pid, struct in_netns *job, const char *what, struct cryo_error **err) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
        _cleanup_close_ int netns = open(path, O_RDONLY | O_CLOEXEC);
        if (netns < 0)
                return cryo_error_errno(err, errno, "cannot open the network namespace of pid %d", pid);
        job->netns_fd = netns;
        pthread_t thread;
        int r = pthread_create(&thread, NULL, in_netns_thread, job);
        if (r != 0)
                return cryo_error_errno(err, r, "cannot start a thread");
        pthread_join(thread, NULL);
        if (job->result < 0)
                return cryo_error_errno(err, -job->result, "cannot %s of pid %d", what, pid);
        return 0;
}

static int report(struct in_netns *job) {
        if (setns(job->netns_fd, CLONE_NEWNET) < 0)
                return -errno;
        job->report = json_object_new_object();
        json_object_object_add(job->report, "interfaces", read_interfaces());
        json_object_object_add(job->report, "routes", read_routes());
        return 0;
}

int container_read_network(pid_t pid, json_object **out, struct cryo_error **err) {
        struct in_netns job = {.fn = report};
        int r = run_in_netns(pid, &job, "read the network configuration", err);
        if (r < 0)
                return r;
        *out = job.report;
        return 0;
}

static int lo_up(struct in_netns *job) {
        return lo_up_in_netns(job->netns_fd);
}

int container_netns_up(pid_t pid, struct cryo_error **err) {
        struct in_netns job = {.fn = lo_up};
        return run_in_netns(pid, &job, "bring up the loopback interface", err);
}
