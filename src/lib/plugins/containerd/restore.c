/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "plugins/containerd/containerd.h"

int containerd_restore_container(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
                                 struct cryo_error **err) {
        return cryo_error_set(err, EOPNOTSUPP, "containerd restore is being written");
}
