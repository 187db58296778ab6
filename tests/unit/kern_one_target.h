// tests/unit/kern_one_target.h — pipeline/kernels.c built for one target with every
// public kernel renamed NAME_<KERN_SUFFIX> (define KERN_ONE_TARGET and KERN_RENAME
// first), so test_kernel_clones.c can call the AVX-512, AVX2 and baseline builds of
// the same source side by side: the clones picked at load time are these builds.
#define kern_exp_neg_clamp87 KERN_RENAME(kern_exp_neg_clamp87)
#define kern_exp_neg_flush87 KERN_RENAME(kern_exp_neg_flush87)
#define kern_gelu KERN_RENAME(kern_gelu)
#define kern_add_gelu KERN_RENAME(kern_add_gelu)
#define kern_add KERN_RENAME(kern_add)
#define kern_norm_gelu_rows KERN_RENAME(kern_norm_gelu_rows)
#define kern_layer_norm KERN_RENAME(kern_layer_norm)
#define kern_softmax_rows_unnorm KERN_RENAME(kern_softmax_rows_unnorm)
#define kern_scale_rows KERN_RENAME(kern_scale_rows)
#define kern_rmsnorm_rows KERN_RENAME(kern_rmsnorm_rows)
#define kern_geglu_rows KERN_RENAME(kern_geglu_rows)
#define kern_softmax_rows_masked KERN_RENAME(kern_softmax_rows_masked)
#define kern_log_softmax_row KERN_RENAME(kern_log_softmax_row)
#define kern_step_attend KERN_RENAME(kern_step_attend)
#define kern_step_scores KERN_RENAME(kern_step_scores)
#define kern_step_values KERN_RENAME(kern_step_values)
#include "pipeline/kernels.c"
