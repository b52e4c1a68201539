/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network configuration of a container, read from inside its network
 * namespace: interfaces (name, MAC, flags, MTU), addresses and routes.
 * A forked child joins the namespace (setns must not touch cryo's own
 * namespace) and sends the JSON back through a pipe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
        _cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
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

static void report_from_child(int netns_fd, int out_fd) {
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                _exit(1);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "interfaces", read_interfaces());
        json_object_object_add(o, "routes", read_routes());
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size_t len = strlen(text);
        int status = 0;
        while (len > 0) {
                ssize_t n = write(out_fd, text, len);
                if (n <= 0) {
                        status = 1;
                        break;
                }
                text += n;
                len -= (size_t) n;
        }
        json_object_put(o);
        _exit(status);
}

int container_read_network(pid_t pid, json_object **out, struct cryo_error **err) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
        _cleanup_close_ int netns = open(path, O_RDONLY | O_CLOEXEC);
        if (netns < 0)
                return cryo_error_errno(err, errno, "cannot open the network namespace of pid %d", pid);
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return cryo_error_errno(err, errno, "pipe");
        _cleanup_close_ int rd = pipefd[0];
        pid_t child = fork();
        if (child < 0) {
                close(pipefd[1]);
                return cryo_error_errno(err, errno, "fork");
        }
        if (child == 0) {
                close(rd);
                report_from_child(netns, pipefd[1]);
        }
        close(pipefd[1]);

        _cleanup_free_ char *text = NULL;
        int r = fs_read_fd(rd, 1 << 22, &text, NULL, NULL);
        int status = 0;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return cryo_error_set(err, EIO, "cannot read the network configuration of pid %d", pid);
        json_object *o = json_tokener_parse(text);
        if (!o)
                return cryo_error_set(err, EBADMSG, "bad network report for pid %d", pid);
        *out = o;
        return 0;
}

static void lo_up_in_child(int netns_fd) {
        _exit(lo_up_in_netns(netns_fd) < 0 ? 1 : 0);
}

int container_netns_up(pid_t pid, struct cryo_error **err) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
        _cleanup_close_ int netns = open(path, O_RDONLY | O_CLOEXEC);
        if (netns < 0)
                return cryo_error_errno(err, errno, "cannot open the network namespace of pid %d", pid);
        pid_t child = fork();
        if (child < 0)
                return cryo_error_errno(err, errno, "fork");
        if (child == 0)
                lo_up_in_child(netns);
        int status = 0;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return cryo_error_set(err, EIO, "cannot bring up the loopback interface of pid %d", pid);
        return 0;
}
