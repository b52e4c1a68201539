/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The checkpoint directory layout.  File names follow the de-facto format
 * that Podman, CRI-O and containerd's CRI write (checkpointctl's
 * lib/metadata.go), so other tools can read what cryo writes; cryo adds its
 * own manifest, cryo.json, which versions the whole and lists a checksum for
 * every file.
 *
 * Version 2 lists XXH3-128 chunk-tree checksums ("xxh128", format/digest.h)
 * where version 1 listed SHA-256 ("sha256"); both are read.
 */
#define CRYO_FORMAT_VERSION 3
/* What a checkpoint is written as: the lowest version that describes it. */
#define CRYO_FORMAT_VERSION_BASE 2
/* Version 3: tmpfs contents saved by cryo instead of CRIU (container.tmpfs,
 * tmpfs/N.tar), which CRIU cannot restore alone: an older cryo must refuse
 * the checkpoint rather than fail in CRIU. */
#define CRYO_FORMAT_VERSION_OWN_TMPFS 3

#define CRYO_MANIFEST_FILE  "cryo.json"
#define CRYO_CRIU_DIR       "checkpoint"
#define CRYO_SPEC_DUMP      "spec.dump"
#define CRYO_CONFIG_DUMP    "config.dump"
#define CRYO_STATUS_DUMP    "status.dump"
#define CRYO_ROOTFS_DIFF    "rootfs-diff.tar"
#define CRYO_DELETED_FILES  "deleted.files"
#define CRYO_NETWORK_STATUS "network.status"
#define CRYO_STATS_DUMP     "stats-dump"
#define CRYO_DUMP_LOG       "dump.log"
#define CRYO_RESTORE_LOG    "restore.log"
#define CRYO_DEVSHM_TAR     "devshm-checkpoint.tar"
#define CRYO_VOLUMES_DIR    "volumes"

#define CRYO_DEFAULT_ROOT "/var/lib/cryo/checkpoints"

/* A manifest larger than this is not one of ours. */
#define CRYO_MANIFEST_MAX (64u << 20)
