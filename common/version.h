/*
 * version.h - the version of this build, shown by `ordinatus --version`, /healthz and the
 * ordinatus_build_info gauge of /metrics.
 */
#ifndef VERSION_H
#define VERSION_H

#define ORDINATUS_VERSION "0.2.0"

#endif
