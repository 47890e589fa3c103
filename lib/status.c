/* Status names and messages, generated from SUPCON_STATUS_MAP, and the version calls. */
#include "supcon/core.h"

#define SC_STR2(x) #x
#define SC_STR(x) SC_STR2(x)

unsigned supcon_version_number(void) { return SUPCON_VERSION_NUMBER; }

const char *supcon_version_string(void) {
    return SC_STR(SUPCON_VERSION_MAJOR) "." SC_STR(SUPCON_VERSION_MINOR) "." SC_STR(
        SUPCON_VERSION_PATCH);
}

const char *supcon_status_string(supcon_status s) {
    switch (s) {
#define SC_STATUS_MSG_(name, value, msg) \
    case SUPCON_##name:                  \
        return msg;
        SUPCON_STATUS_MAP(SC_STATUS_MSG_)
#undef SC_STATUS_MSG_
    }
    return "unknown status";
}

const char *supcon_status_name(supcon_status s) {
    switch (s) {
#define SC_STATUS_NAME_(name, value, msg) \
    case SUPCON_##name:                   \
        return #name;
        SUPCON_STATUS_MAP(SC_STATUS_NAME_)
#undef SC_STATUS_NAME_
    }
    return "UNKNOWN";
}
