#!/usr/bin/env bash
# Builds SfgraphTestGain.vst3, a tiny real VST3 effect used by tests/test_plugin_hosting.py,
# from the DISTRHO Plugin Framework sources Debian ships (no network, nothing written to /usr).
#
# Debian packages needed (bookworm):  dpf-source g++ make
#   (g++ pulls in the C++ compiler and libc6-dev; no pkg-config, X11, OpenGL or other dev libs:
#    the plugin has no UI and links only libc/libstdc++/libdl.)
#
# Usage:  tests/plugins/build_test_vst3.sh [OUTPUT_DIR]      (default: .venv/test-plugins)
# Prints the bundle path (OUTPUT_DIR/SfgraphTestGain.vst3) on stdout. Does nothing if the bundle
# is already there and was built from this script's current plugin source (a stamp file in the
# bundle records that); set FORCE=1 to rebuild anyway. Build time: ~2 s on 2 cores.
#
# Debian's dpf-source has the framework but not DPF's example plugins, so the plugin source (a
# stereo gain, ~70 lines against DPF's Plugin API) is kept below. It has three parameters, as
# pedalboard names them:
#   gain_db        -80 … +20 dB, default 0          output = input · 10^(gain_db/20)
#   invert         0 or 1 (True/False), default 0  flips polarity
#   delay_samples  integer 0 … 1000, default 0      delays the output by that many samples and
#                                                   reports it as the plugin's latency
set -euo pipefail

NAME=SfgraphTestGain
DPF=${DPF_PATH:-/usr/share/dpf}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT_DIR=$(realpath -m "${1:-$REPO_ROOT/.venv/test-plugins}")

missing=()
[ -f "$DPF/distrho/DistrhoPluginMain.cpp" ] && [ -f "$DPF/distrho/src/DistrhoPluginVST3.cpp" ] || missing+=(dpf-source)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
    echo "build_test_vst3.sh: missing Debian package(s): ${missing[*]}" >&2
    echo "  install with: apt-get install -y ${missing[*]}" >&2
    exit 2
fi
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ARCH_DIR=x86_64-linux ;;
    Linux-aarch64) ARCH_DIR=aarch64-linux ;;
    *) echo "build_test_vst3.sh: only Linux x86_64/aarch64 is supported, not $(uname -sm)" >&2; exit 2 ;;
esac

write_sources() {  # $1: directory
cat > "$1/DistrhoPluginInfo.h" <<'CPP'
#ifndef DISTRHO_PLUGIN_INFO_H_INCLUDED
#define DISTRHO_PLUGIN_INFO_H_INCLUDED
#define DISTRHO_PLUGIN_BRAND           "sfgraph"
#define DISTRHO_PLUGIN_NAME            "SfgraphTestGain"
#define DISTRHO_PLUGIN_URI             "urn:sfgraph:test-gain"
#define DISTRHO_PLUGIN_BRAND_ID        Sfgr
#define DISTRHO_PLUGIN_UNIQUE_ID       tGai
#define DISTRHO_PLUGIN_HAS_UI          0
#define DISTRHO_PLUGIN_IS_RT_SAFE      1
#define DISTRHO_PLUGIN_NUM_INPUTS      2
#define DISTRHO_PLUGIN_NUM_OUTPUTS     2
#define DISTRHO_PLUGIN_WANT_LATENCY    1
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Fx|Tools"
#endif
CPP
cat > "$1/SfgraphTestGain.cpp" <<'CPP'
// Test plugin for sfgraph: stereo gain with polarity flip and an optional delay it reports as latency.
#include "DistrhoPlugin.hpp"
#include <cmath>
#include <cstring>

START_NAMESPACE_DISTRHO

enum { kGain, kInvert, kDelay, kParamCount };
static const uint32_t kMaxDelay = 1000, kRing = 8192;  // kRing: power of two > kMaxDelay

class SfgraphTestGain : public Plugin {
public:
    SfgraphTestGain() : Plugin(kParamCount, 0, 0), fGainDb(0.f), fInvert(0.f), fDelay(0), fWrite(0) { clear(); }

protected:
    const char* getLabel() const override { return "SfgraphTestGain"; }
    const char* getDescription() const override { return "sfgraph test plugin: gain, polarity, delay"; }
    const char* getMaker() const override { return "sfgraph"; }
    const char* getLicense() const override { return "ISC"; }
    uint32_t getVersion() const override { return d_version(1, 0, 0); }
    int64_t getUniqueId() const override { return d_cconst('s', 'T', 'G', 'n'); }

    void initParameter(uint32_t index, Parameter& p) override {
        p.hints = kParameterIsAutomatable;
        switch (index) {
        case kGain:
            p.name = "Gain"; p.symbol = "gain"; p.unit = "dB";
            p.ranges.def = 0.f; p.ranges.min = -80.f; p.ranges.max = 20.f;  // 100 dB: pedalboard's 1000 steps hit every 0.1 dB
            break;
        case kInvert:
            p.hints |= kParameterIsBoolean;
            p.name = "Invert"; p.symbol = "invert";
            p.ranges.def = 0.f; p.ranges.min = 0.f; p.ranges.max = 1.f;
            break;
        case kDelay:
            p.hints |= kParameterIsInteger;
            p.name = "Delay"; p.symbol = "delay"; p.unit = "samples";
            p.ranges.def = 0.f; p.ranges.min = 0.f; p.ranges.max = (float)kMaxDelay;
            break;
        }
    }

    float getParameterValue(uint32_t index) const override {
        switch (index) {
        case kGain: return fGainDb;
        case kInvert: return fInvert;
        case kDelay: return (float)fDelay;
        }
        return 0.f;
    }

    void setParameterValue(uint32_t index, float value) override {
        switch (index) {
        case kGain: fGainDb = value; break;
        case kInvert: fInvert = value > 0.5f ? 1.f : 0.f; break;
        case kDelay:
            fDelay = (uint32_t)std::lround(value < 0.f ? 0.f : value > kMaxDelay ? kMaxDelay : value);
            setLatency(fDelay);
            break;
        }
    }

    void activate() override { clear(); }

    void run(const float** inputs, float** outputs, uint32_t frames) override {
        const float g = std::pow(10.f, fGainDb / 20.f) * (fInvert > 0.5f ? -1.f : 1.f);
        for (uint32_t i = 0; i < frames; ++i) {
            for (int c = 0; c < 2; ++c) {
                fRing[c][fWrite] = inputs[c][i];
                outputs[c][i] = g * fRing[c][(fWrite - fDelay) & (kRing - 1)];
            }
            fWrite = (fWrite + 1) & (kRing - 1);
        }
    }

private:
    void clear() { std::memset(fRing, 0, sizeof(fRing)); fWrite = 0; }

    float fGainDb, fInvert;
    uint32_t fDelay, fWrite;
    float fRing[2][kRing];

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(SfgraphTestGain)
};

Plugin* createPlugin() { return new SfgraphTestGain(); }

END_NAMESPACE_DISTRHO
CPP
}

BUNDLE="$OUT_DIR/$NAME.vst3"
# The stamp is a hash of this script (which holds the plugin source) and the DPF version.
STAMP_VALUE=$( { cat "${BASH_SOURCE[0]}"; dpkg-query -W -f='${Version}' dpf-source 2>/dev/null || true; } | sha256sum | cut -c1-16)
if [ "${FORCE:-0}" != 1 ] && [ -f "$BUNDLE/Contents/$ARCH_DIR/$NAME.so" ] \
   && [ "$(cat "$BUNDLE/.sfgraph-build-stamp" 2>/dev/null)" = "$STAMP_VALUE" ]; then
    echo "$BUNDLE"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sfgraph-vst3.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp -r "$DPF/distrho" "$WORK/distrho"        # the framework sources, copied; /usr is only read
mkdir -p "$WORK/plugin" "$WORK/$NAME.vst3/Contents/$ARCH_DIR"
write_sources "$WORK/plugin"

cat > "$WORK/Makefile" <<MK
# Same flags DPF's Makefile.base.mk uses for a release Linux plugin, without its UI/library probing.
CXXFLAGS = -std=gnu++11 -O2 -fPIC -DPIC -fvisibility=hidden -fdata-sections -ffunction-sections \\
           -Wall -Wextra -pipe -DNDEBUG -Iplugin -Idistrho
LDFLAGS  = -shared -Wl,-O1,--as-needed,--gc-sections,--no-undefined -Wl,--version-script=distrho/vst3.version
SO = $NAME.vst3/Contents/$ARCH_DIR/$NAME.so
\$(SO): plugin.o main_vst3.o
	\$(CXX) \$^ \$(LDFLAGS) -ldl -o \$@
plugin.o: plugin/$NAME.cpp plugin/DistrhoPluginInfo.h
	\$(CXX) \$(CXXFLAGS) -c \$< -o \$@
main_vst3.o: distrho/DistrhoPluginMain.cpp plugin/DistrhoPluginInfo.h
	\$(CXX) \$(CXXFLAGS) -DDISTRHO_PLUGIN_TARGET_VST3 -c \$< -o \$@
MK
cp "$DPF/utils/symbols/vst3.version" "$WORK/distrho/vst3.version"

if ! make -C "$WORK" -j2 >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log" >&2
    echo "build_test_vst3.sh: compiling $NAME.vst3 failed (log above)" >&2
    exit 1
fi
echo "$STAMP_VALUE" > "$WORK/$NAME.vst3/.sfgraph-build-stamp"

mkdir -p "$OUT_DIR"
rm -rf "$BUNDLE" "$BUNDLE.tmp.$$"
cp -r "$WORK/$NAME.vst3" "$BUNDLE.tmp.$$"
mv "$BUNDLE.tmp.$$" "$BUNDLE"
echo "$BUNDLE"
