/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Bringing up "lo" in a network namespace, in the calling thread (which
 * enters the namespace: a short-lived thread of cryo's, or the hook
 * program).
 * Header-only so that cryo-netns-up needs no more than libc and json-c.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "util/cleanup.h"

/* Returns 0, or a negative errno. */
static inline int lo_up_in_netns(int netns_fd) {
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                return -errno;
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        struct ifreq ifr = {0};
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return -errno;
        return 0;
}
