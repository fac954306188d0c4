#!/bin/sh
# Fails unless the plugin exports exactly the SPANK callbacks and plugin_* symbols.
set -e
so=$1
syms=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
echo "$syms"
for want in plugin_name plugin_type plugin_version slurm_spank_init slurm_spank_init_post_opt slurm_spank_exit; do
  echo "$syms" | grep -qx "$want" || { echo "missing export $want"; exit 1; }
done
extra=$(echo "$syms" | grep -vE '^(plugin_|slurm_spank_)' || true)
[ -z "$extra" ] || { echo "unexpected exports: $extra"; exit 1; }
