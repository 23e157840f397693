/* SPDX-License-Identifier: MIT */
/*
 * What the build is instrumented with, for the few places that must know: VMB_TSAN is 1 in a
 * ThreadSanitizer build (gcc defines __SANITIZE_THREAD__, clang answers __has_feature), else 0.
 * Owns nothing; no state, no lock.
 */
#ifndef VMB_CORE_SANITIZE_H
#define VMB_CORE_SANITIZE_H

#if defined(__SANITIZE_THREAD__)
#define VMB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VMB_TSAN 1
#endif
#endif
#ifndef VMB_TSAN
#define VMB_TSAN 0
#endif

#endif
