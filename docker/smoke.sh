#!/usr/bin/env bash
# Offline smoke test of docker/Dockerfile on a machine without registry access or a GPU.
#
# The real base (nvidia/cuda:...) cannot be pulled here, so a Debian minbase root filesystem built with
# debootstrap stands in for it under the same tag; the build gets CPU torch from a local wheel. Then the
# image runs with no network, as a non-root host uid, on a mounted host folder: `fls --help`, a tiny
# `fls train` and an `fls evaluate` of that run; the outputs must appear on the host owned by that uid.
#
# Needs root (it may install docker.io/debootstrap and start dockerd). Idempotent: the stand-in base is
# cached under its tag, and a dockerd started here is stopped on exit. Prints the time of each step.
#
# Environment knobs:
#   FLS_SMOKE_IMAGE        image tag to build (fls:smoke)
#   FLS_SMOKE_TORCH_WHEEL  CPU torch wheel for the container's Python (default: /opt/wheels/torch-2.13.0+cpu-*.whl)
#   FLS_SMOKE_UID/GID      uid:gid to run as (default: yours; 4242:4242 when you are root, to test a foreign uid)
#   FLS_SMOKE_KEEP=1       keep the host output folder
#   DEBIAN_MIRROR          debootstrap mirror (http://deb.debian.org/debian)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERFILE="$REPO/docker/Dockerfile"
IMAGE="${FLS_SMOKE_IMAGE:-fls:smoke}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm  # its python3 (3.11) matches the cp311 CPU torch wheel
BASE_IMAGE="$(sed -n 's/^ARG BASE_IMAGE=//p' "$DOCKERFILE" | head -n 1)"
export DOCKER_BUILDKIT=0  # prove the legacy builder copes (no BuildKit-only syntax)

if [[ -z "$BASE_IMAGE" ]]; then
    echo "error: no 'ARG BASE_IMAGE=' default in $DOCKERFILE" >&2
    exit 2
fi
for needed in pyproject.toml README.md requirements.lock fls pipeline; do
    if [[ ! -e "$REPO/$needed" ]]; then
        echo "error: $REPO/$needed is missing; docker/Dockerfile copies it into the image" >&2
        exit 2
    fi
done
if [[ "$(id -u)" -ne 0 ]]; then
    echo "error: docker/smoke.sh needs root (it installs packages and starts dockerd)" >&2
    exit 2
fi

DOCKERD_PID=""
WORKDIRS=()
COPIED=()
TIMINGS=()

print_timings() {
    echo
    echo "== timings"
    if ((${#TIMINGS[@]})); then printf '%s\n' "${TIMINGS[@]}"; fi
}

cleanup() {
    local rc=$?
    local f
    if ((rc != 0)); then
        print_timings
        echo "docker smoke test FAILED (exit $rc)" >&2
    fi
    for f in "${COPIED[@]+"${COPIED[@]}"}"; do rm -f "$f"; done
    for f in "${WORKDIRS[@]+"${WORKDIRS[@]}"}"; do rm -rf "$f"; done
    if [[ -n "$DOCKERD_PID" ]]; then
        echo "== stopping the dockerd started here (pid $DOCKERD_PID)"
        kill "$DOCKERD_PID" 2> /dev/null || true
        wait "$DOCKERD_PID" 2> /dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT

# timed NAME CMD...: run CMD, remember how long it took.
timed() {
    local name=$1
    shift
    local t0 t1
    echo "== $name"
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    TIMINGS+=("$(printf '%-28s %8.1f s' "$name" "$(echo "$t1 - $t0" | bc)")")
}

ensure_packages() {
    local missing=()
    command -v dockerd > /dev/null || missing+=(docker.io)
    command -v debootstrap > /dev/null || missing+=(debootstrap)
    command -v bc > /dev/null || missing+=(bc)
    if ((${#missing[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
    fi
}

start_dockerd() {
    if docker info > /dev/null 2>&1; then
        echo "dockerd already running; using it"
        return
    fi
    local log
    log="$(mktemp /tmp/fls-smoke-dockerd.XXXXXX.log)"
    dockerd --iptables=false --bridge=none --ip-forward=false > "$log" 2>&1 &
    DOCKERD_PID=$!
    local i
    for i in $(seq 1 60); do
        if docker info > /dev/null 2>&1; then
            echo "dockerd up (pid $DOCKERD_PID, log $log)"
            return
        fi
        if ! kill -0 "$DOCKERD_PID" 2> /dev/null; then
            echo "error: dockerd exited; see $log" >&2
            DOCKERD_PID=""
            tail -n 20 "$log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "error: dockerd did not answer within 60 s; see $log" >&2
    exit 1
}

build_standin_base() {
    if docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
        echo "stand-in base $BASE_IMAGE already present; reusing it"
        return
    fi
    local rootfs
    rootfs="$(mktemp -d /tmp/fls-smoke-rootfs.XXXXXX)"
    WORKDIRS+=("$rootfs")
    # minbase has no python3, like the CUDA runtime images: the Dockerfile must install it itself.
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$DEBIAN_MIRROR" > "$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        exit 1
    }
    rm -f "$rootfs.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --message "offline stand-in for $BASE_IMAGE (debootstrap $SUITE minbase)" - "$BASE_IMAGE"
}

build_image() {
    local wheel=${FLS_SMOKE_TORCH_WHEEL:-}
    if [[ -z "$wheel" ]]; then
        wheel="$(ls /opt/wheels/torch-2.13.0+cpu-cp311-*.whl 2> /dev/null | head -n 1 || true)"
    fi
    if [[ -z "$wheel" || ! -f "$wheel" ]]; then
        echo "error: no CPU torch wheel found; set FLS_SMOKE_TORCH_WHEEL to a torch-2.13.0 cp311 wheel" >&2
        exit 2
    fi
    local dest="$REPO/docker/wheels/$(basename "$wheel")"
    COPIED+=("$dest")
    ln -f "$wheel" "$dest" 2> /dev/null || cp -f "$wheel" "$dest"
    # The host's extra CAs (TLS-intercepting proxy) so pip inside the build can reach PyPI.
    local crt
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [[ -f "$crt" ]] || continue
        COPIED+=("$REPO/docker/certs/$(basename "$crt")")
        cp -f "$crt" "$REPO/docker/certs/"
    done
    docker build --network host -f "$DOCKERFILE" -t "$IMAGE" \
        --build-arg "TORCH_SPEC=/tmp/wheels/$(basename "$wheel")" "$REPO"
}

# Host folder mounted at /work, owned by the uid the container runs as.
if [[ -n "${FLS_SMOKE_UID:-}" ]]; then
    RUN_UID=$FLS_SMOKE_UID
    RUN_GID=${FLS_SMOKE_GID:-$FLS_SMOKE_UID}
elif [[ -n "${SUDO_UID:-}" && "${SUDO_UID}" -ne 0 ]]; then
    RUN_UID=$SUDO_UID
    RUN_GID=${SUDO_GID:-$SUDO_UID}
else
    RUN_UID=4242  # root here: use a uid unknown to the image to exercise the HOME/USER handling
    RUN_GID=4242
fi
HOST_OUT="$(mktemp -d /tmp/fls-smoke-out.XXXXXX)"
if [[ "${FLS_SMOKE_KEEP:-0}" != 1 ]]; then WORKDIRS+=("$HOST_OUT"); fi
chown "$RUN_UID:$RUN_GID" "$HOST_OUT"

in_container() {
    docker run --rm --network none --user "$RUN_UID:$RUN_GID" -e OMP_NUM_THREADS=1 \
        -v "$HOST_OUT:/work" "$IMAGE" "$@"
}

in_container_with() {
    local entry=$1
    shift
    docker run --rm --network none --user "$RUN_UID:$RUN_GID" --entrypoint "$entry" \
        -v "$HOST_OUT:/work" "$IMAGE" "$@"
}

check_outputs() {
    local f
    for f in run/summary.json run/model.pt run/metrics.csv run/run_info.json eval/eval.json eval/run_info.json \
        dvcmini/dvc.lock dvcmini/models.txt dvcmini/count.txt; do
        if [[ ! -s "$HOST_OUT/$f" ]]; then
            echo "error: expected output $f is missing or empty on the host" >&2
            exit 1
        fi
    done
    local foreign
    foreign="$(find "$HOST_OUT" \( ! -uid "$RUN_UID" -o ! -gid "$RUN_GID" \) -printf '%u:%g %p\n')"
    if [[ -n "$foreign" ]]; then
        echo "error: outputs not owned by $RUN_UID:$RUN_GID:" >&2
        echo "$foreign" >&2
        exit 1
    fi
    echo "outputs present and owned by $RUN_UID:$RUN_GID:"
    (cd "$HOST_OUT" && find . -path ./dvcmini/.git -prune -o -path ./dvcmini/.dvc -prune -o -type f -print | sort)
}

timed "packages (docker.io etc.)" ensure_packages
timed "start dockerd" start_dockerd
timed "stand-in base (debootstrap)" build_standin_base
timed "docker build" build_image
docker image ls "$IMAGE"
timed "run: fls --help" in_container --help
timed "run: dvc/git present" in_container_with sh -c 'dvc --version && git --version && python -c "import torch; print(\"torch\", torch.__version__)"'
timed "run: fls train (tiny)" in_container train --arch nature_cnn --game Breakout --out run \
    --total-steps 256 --num-envs 2 --num-steps 32 --seed 0 --no-progress
timed "run: fls evaluate (tiny)" in_container evaluate --run run --out eval \
    --episodes 2 --num-envs 2 --max-episode-steps 500 --seed 1000 --no-progress
# A two-stage DVC pipeline in a fresh git repo on the mount: git, DVC and `fls` together as a foreign uid.
timed "run: dvc repro (mini)" in_container_with sh -ec '
    mkdir -p dvcmini && cd dvcmini
    git init -q && dvc init -q
    printf "%s\n" "stages:" \
        "  models:" "    cmd: fls models > models.txt" "    outs: [models.txt]" \
        "  count:" "    cmd: wc -l < models.txt > count.txt" "    deps: [models.txt]" "    outs: [count.txt]" > dvc.yaml
    dvc repro -q && dvc status -q && test -s models.txt && test -s count.txt && cat count.txt'
timed "check host outputs" check_outputs

print_timings
echo "docker smoke test passed"
