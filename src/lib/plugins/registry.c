/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "plugins/plugin.h"

static const struct cryo_plugin *const plugins[] = {
        &cryo_plugin_process, &cryo_plugin_containerd, &cryo_plugin_docker, &cryo_plugin_runc, NULL,
};

const struct cryo_plugin *const *cryo_plugins(void) {
        return plugins;
}

const struct cryo_plugin *cryo_plugin_find(const char *name) {
        for (const struct cryo_plugin *const *p = plugins; name && *p; p++)
                if (!strcmp((*p)->name, name))
                        return *p;
        return NULL;
}
