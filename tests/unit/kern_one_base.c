// tests/unit/kern_one_base.c — pipeline/kernels.c built for x86-64 only (see kern_one_target.h).
#define KERN_ONE_TARGET "arch=x86-64"
#define KERN_RENAME(f) f##_base
#include "tests/unit/kern_one_target.h"
