/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Helpers shared by the typed clients (containerd.c, cri.c). */
#include <protobuf-c/protobuf-c.h>

#include "rpc/containerd.h"

/* Every generated map<string,string> entry has this layout. */
struct pb_map_entry {
        ProtobufCMessage base;
        char *key;
        char *value;
};

/* Copies `n` map entries (an array of pointers to generated *Entry
 * messages) into owned labels. */
int rpc_labels_from_pb(struct ctrd_labels *out, size_t n, void *entries);
/* Builds map entries of type entry_desc pointing at the caller's strings;
 * *(void **) ret is one allocation, freed with free(). */
int rpc_labels_to_pb(const struct ctrd_labels *l, const ProtobufCMessageDescriptor *entry_desc,
                     size_t *ret_n, void *ret);
