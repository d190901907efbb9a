#!/usr/bin/env bash
# Build the local Postgres test image `ward-test/postgres:MAJOR` (a stand-in for
# the official `postgres:MAJOR` image) without any image registry.
#
# usage: .ci/test-image.sh [--force] [MAJOR]
#
#   MAJOR     15 (default; Debian bookworm) or 18 (the newest major Debian
#             packages, from the forky suite).
#   Does nothing if the tag ward-test/postgres:MAJOR already exists (cache by tag).
#   --force   rebuild the base rootfs and the image even if they exist.
#
# How: debootstrap a minimal Debian rootfs with postgresql-MAJOR from Debian's
# mirror, trim it, `docker import` it as ward-test/postgres-base:MAJOR, then
# `docker build` .ci/postgres-image/Dockerfile (COPY/ENV only, no network) on
# top of it. Like the official images, 18 keeps PGDATA in
# /var/lib/postgresql/18/docker under a VOLUME at /var/lib/postgresql; older
# majors use /var/lib/postgresql/data. Needs root (debootstrap, chroot) and a
# running docker engine. Installs debootstrap with apt-get if it is missing.
#
# Environment:
#   WARD_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   DOCKER_BUILDKIT      left alone if set; set to 0 when buildx is unavailable
set -Eeuo pipefail

PG_MAJOR='15'
FORCE=0
for arg in "$@"; do
	case "$arg" in
		--force | -f) FORCE=1 ;;
		-h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		15 | 18) PG_MAJOR="$arg" ;;
		*) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; printf '[test-image] error: unknown argument: %s\n' "$arg" >&2; exit 1 ;;
	esac
done

IMAGE="ward-test/postgres:$PG_MAJOR"
BASE_IMAGE="ward-test/postgres-base:$PG_MAJOR" # FROM in postgres-image/Dockerfile
case "$PG_MAJOR" in
	15)
		SUITE='bookworm'
		SUITE_SCRIPT=''
		PGDATA_DIR='/var/lib/postgresql/data'
		VOLUME_DIR='/var/lib/postgresql/data'
		;;
	18)
		SUITE='forky'
		# debootstrap on bookworm has no script named forky; sid's fits any testing suite.
		SUITE_SCRIPT='/usr/share/debootstrap/scripts/sid'
		PGDATA_DIR='/var/lib/postgresql/18/docker'
		VOLUME_DIR='/var/lib/postgresql'
		;;
esac
MIRROR="${WARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# postgresql-N pulls in tzdata, postgresql-common, ...; locales is named because
# newer suites no longer pull it in (the image needs en_US.UTF-8); libnss-wrapper lets
# the entrypoint run initdb under an arbitrary `--user` uid, like the official image.
INCLUDE="postgresql-${PG_MAJOR},libnss-wrapper,locales"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONTEXT_SRC="$HERE/postgres-image"

log() { printf '[test-image] %s\n' "$*" >&2; }
die() { printf '[test-image] error: %s\n' "$*" >&2; exit 1; }


image_exists() { docker image inspect "$1" > /dev/null 2>&1; }
image_id() { docker image inspect --format '{{.Id}}' "$1" 2> /dev/null || true; }
image_label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2> /dev/null || true; }

# Recipe fingerprints, stored as image labels. The base is reused (without --force)
# only if it was made by the same version of this script; a final image made from
# other files than the current ones is reported (not rebuilt: cache is by tag).
BASE_RECIPE="$({ cat "${BASH_SOURCE[0]}"; echo "$PG_MAJOR"; } | sha256sum | cut -c1-16)"
RECIPE="$({ cat "${BASH_SOURCE[0]}" "$CONTEXT_SRC/Dockerfile" "$CONTEXT_SRC/docker-entrypoint.sh"; echo "$PG_MAJOR"; } | sha256sum | cut -c1-16)"

command -v docker > /dev/null 2>&1 || die "docker not found"
docker version > /dev/null 2>&1 || die "cannot talk to the docker engine (is dockerd running?)"

check_cached() {
	if image_exists "$IMAGE"; then
		local have
		have="$(image_label "$IMAGE" ward.test.recipe)"
		if [ "$have" != "$RECIPE" ]; then
			log "note: $IMAGE was built from other files than the current .ci/postgres-image/ (recipe ${have:-unknown} != $RECIPE); run '$0 --force' to rebuild"
		fi
		log "$IMAGE already exists; nothing to do (use --force to rebuild)"
		return 0
	fi
	return 1
}

# Fast path: no lock, no root needed.
if [ "$FORCE" = 0 ] && check_cached; then
	exit 0
fi

[ "$(id -u)" = 0 ] || die "building $IMAGE needs root (debootstrap/chroot); re-run as root"

# Serialise concurrent builds (e.g. several test processes calling this script).
LOCK="${TMPDIR:-/tmp}/ward-test-image-$PG_MAJOR.lock"
exec 9> "$LOCK"
if ! flock -n 9; then
	log "another build holds $LOCK; waiting"
	flock 9
fi
# Someone else may have built it while we waited.
if [ "$FORCE" = 0 ] && check_cached; then
	exit 0
fi

# Lazily unmount everything mounted below directory $1, deepest first.
umount_under() {
	local m
	awk '{print $5}' /proc/self/mountinfo | { grep -F "$1/" || true; } | sort -r | while read -r m; do
		umount -l "$m" 2> /dev/null || true
	done
}

START=$SECONDS
WORK=''
cleanup() {
	local rc=$?
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		# Never rm -rf through a mount (debootstrap mounts /proc, /sys, maybe /dev
		# inside the target and leaves them behind if it fails).
		umount_under "$WORK"
		rm -rf --one-file-system "$WORK" || log "warning: could not fully remove $WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK="$(mktemp -d /var/tmp/ward-test-image.XXXXXX)"

ensure_debootstrap() {
	command -v debootstrap > /dev/null 2>&1 && return 0
	log "installing debootstrap (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update > "$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log" >&2; die "apt-get update failed"; }
	apt-get install -y debootstrap >> "$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log" >&2; die "apt-get install debootstrap failed"; }
	command -v debootstrap > /dev/null 2>&1 || die "debootstrap still not found after install"
}

# Run a shell snippet inside the rootfs (never touch "$ROOTFS"/... paths from the
# host side: absolute symlinks such as /var/run -> /run would escape the rootfs).
in_rootfs() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C /bin/sh -eu -c "$1"; }

build_rootfs() {
	ROOTFS="$WORK/rootfs"
	local attempt
	for attempt in 1 2; do
		rm -rf --one-file-system "$ROOTFS"
		log "debootstrap --variant=minbase --include=$INCLUDE $SUITE (attempt $attempt; mirror $MIRROR)"
		if DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include="$INCLUDE" \
			"$SUITE" "$ROOTFS" "$MIRROR" $SUITE_SCRIPT > "$WORK/debootstrap.log" 2>&1; then
			break
		fi
		tail -n 40 "$WORK/debootstrap.log" >&2
		[ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 20 "$ROOTFS/debootstrap/debootstrap.log" >&2
		[ "$attempt" = 2 ] && die "debootstrap failed"
		log "debootstrap failed; retrying once"
		# release any mounts left inside the failed target before wiping it
		umount_under "$ROOTFS"
	done

	[ -x "$ROOTFS/usr/lib/postgresql/$PG_MAJOR/bin/postgres" ] || die "postgres binary missing from rootfs"
	log "debootstrap done after $((SECONDS - START))s; preparing rootfs"

	# The package's postinst may have started the default cluster inside the chroot.
	local pid
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		if [ "$(readlink "/proc/$pid/root" 2> /dev/null)" = "$ROOTFS" ]; then
			log "killing leftover process $pid ($(cat "/proc/$pid/comm" 2> /dev/null)) running in the rootfs"
			kill -9 "$pid" 2> /dev/null || true
		fi
	done

	in_rootfs "
		getent passwd postgres > /dev/null

		# Drop the cluster Debian's postinst created (15/main), and don't make one
		# if another version gets installed later. The entrypoint owns \$PGDATA.
		rm -rf /etc/postgresql/$PG_MAJOR /var/lib/postgresql/$PG_MAJOR /var/log/postgresql/*
		sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf

		# Like the official image: new clusters listen on all addresses.
		sed -ri \"s!^#?(listen_addresses)[[:space:]]*=[[:space:]]*[^[:space:]]+.*!\\\\1 = '*'!\" /usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample
		grep -q \"^listen_addresses = '\\*'\" /usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample

		# LANG=en_US.utf8 as in the official image.
		# (newer suites keep the alias file in /etc, or not at all)
		alias_file=/usr/share/locale/locale.alias
		[ -f \$alias_file ] || alias_file=/etc/locale.alias
		if [ -f \$alias_file ]; then localedef -i en_US -c -f UTF-8 -A \$alias_file en_US.UTF-8; else localedef -i en_US -c -f UTF-8 en_US.UTF-8; fi

		# Directories of the image contract.
		install -d -o postgres -g postgres -m 3777 /var/run/postgresql
		install -d -o postgres -g postgres -m 1777 $VOLUME_DIR
		install -d -m 0755 /docker-entrypoint-initdb.d /usr/local/bin

		# Size: LLVM JIT (~130 MB) is not needed for tests; with llvmjit.so gone
		# postgres simply reports JIT as unavailable.
		rm -rf /usr/lib/postgresql/$PG_MAJOR/lib/llvmjit.so /usr/lib/postgresql/$PG_MAJOR/lib/llvmjit_types.bc /usr/lib/postgresql/$PG_MAJOR/lib/bitcode
		for p in \$(dpkg-query -W -f '\${Package}\\n' 'libllvm*' 'libz3-*' 2> /dev/null); do
			dpkg --purge --force-depends \"\$p\" > /dev/null 2>&1 || :
		done

		# Docs, man pages, translations, charmaps (the locale is compiled already),
		# apt caches and lists, logs, host-specific files, the snakeoil key pair.
		find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
		rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/lintian/* /usr/share/i18n/*
		rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/cache/debconf/*-old /var/lib/dpkg/*-old
		rm -rf /tmp/* /var/tmp/* /root/.cache
		find /var/log -type f -exec truncate -s 0 {} +
		rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
		: > /etc/resolv.conf
		echo localhost > /etc/hostname
	"
	[ -x "$ROOTFS/usr/bin/setpriv" ] || [ -x "$ROOTFS/usr/sbin/gosu" ] || die "neither setpriv nor gosu in rootfs"
	[ -d "$ROOTFS/usr/lib/locale/en_US.utf8" ] || [ -s "$ROOTFS/usr/lib/locale/locale-archive" ] || die "en_US.UTF-8 locale was not generated"
	[ -d "$ROOTFS/usr/share/zoneinfo" ] || die "tzdata missing (postgres uses the system zoneinfo)"
	log "rootfs size: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"
}

import_base() {
	local old
	old="$(image_id "$BASE_IMAGE")"
	log "docker import -> $BASE_IMAGE"
	tar --numeric-owner -C "$ROOTFS" \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./debootstrap' \
		-c . |
		docker import \
			--change "LABEL ward.test.base-recipe=$BASE_RECIPE" \
			--message "debootstrap $SUITE minbase + postgresql-$PG_MAJOR (ward .ci/test-image.sh)" \
			- "$BASE_IMAGE" > /dev/null
	OLD_IDS+=("$old")
}

build_image() {
	local ctx="$WORK/context" old
	old="$(image_id "$IMAGE")"
	# Build from a private copy: fixed file modes (git may not keep +x) and no
	# surprises from concurrent edits of .ci/postgres-image while building.
	mkdir -p "$ctx"
	install -m 0644 "$CONTEXT_SRC/Dockerfile" "$ctx/Dockerfile"
	install -m 0755 "$CONTEXT_SRC/docker-entrypoint.sh" "$ctx/docker-entrypoint.sh"
	if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version > /dev/null 2>&1; then
		export DOCKER_BUILDKIT=0
	fi
	log "docker build -> $IMAGE (DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-default})"
	if ! docker build --label "ward.test.recipe=$RECIPE" \
		--build-arg "PG_MAJOR=$PG_MAJOR" --build-arg "PGDATA_DIR=$PGDATA_DIR" --build-arg "VOLUME_DIR=$VOLUME_DIR" \
		-t "$IMAGE" "$ctx" > "$WORK/build.log" 2>&1; then
		cat "$WORK/build.log" >&2
		die "docker build failed"
	fi
	OLD_IDS=("$old" "${OLD_IDS[@]}")
}

OLD_IDS=()
if [ "$FORCE" = 0 ] && image_exists "$BASE_IMAGE" && [ "$(image_label "$BASE_IMAGE" ward.test.base-recipe)" = "$BASE_RECIPE" ]; then
	log "reusing existing $BASE_IMAGE"
else
	ensure_debootstrap
	build_rootfs
	import_base
fi
build_image

# Drop the images that --force replaced (if no container still uses them).
for id in "${OLD_IDS[@]}"; do
	if [ -n "$id" ] && [ "$id" != "$(image_id "$IMAGE")" ] && [ "$id" != "$(image_id "$BASE_IMAGE")" ]; then
		docker image rm "$id" > /dev/null 2>&1 || true
	fi
done

log "built $IMAGE in $((SECONDS - START))s; size $(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1000/1000}')"
