// common/stage.c — see stage.h.
#include "common/stage.h"

static const char *const NAMES[] = {"input", "audio", "features", "tokens",
                                    "text",  "crash", "inherited"};
_Static_assert(sizeof NAMES / sizeof NAMES[0] == SL_STAGE_COUNT, "a name for every stage");

const char *sl_stage_name(int stage)
{
    if (stage == SL_STAGE_NONE)
        return "none";
    return stage >= 0 && stage < SL_STAGE_COUNT ? NAMES[stage] : "unknown";
}
