// tests/unit/kern_one_v4.c — pipeline/kernels.c built for x86-64-v4 only (see kern_one_target.h).
#define KERN_ONE_TARGET "arch=x86-64-v4"
#define KERN_RENAME(f) f##_v4
#include "tests/unit/kern_one_target.h"
