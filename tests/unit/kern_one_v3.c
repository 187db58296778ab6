// tests/unit/kern_one_v3.c — pipeline/kernels.c built for x86-64-v3 only (see kern_one_target.h).
#define KERN_ONE_TARGET "arch=x86-64-v3"
#define KERN_RENAME(f) f##_v3
#include "tests/unit/kern_one_target.h"
