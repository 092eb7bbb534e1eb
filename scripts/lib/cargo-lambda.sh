# Sourced by scripts/package and scripts/deploy-smoke: cargo-lambda and zig
# (the `ziglang` package, cargo-lambda's cross linker) installed into
# .pydeps-package when missing, rustup's aarch64-unknown-linux-gnu target
# added, and both put on PATH and PYTHONPATH. Needs $root.
deps="$root/.pydeps-package"
if [ ! -x "$deps/bin/cargo-lambda" ]; then
  echo "scripts: installing cargo-lambda and zig into .pydeps-package"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --target "$deps" cargo-lambda==1.9.2 ziglang==0.17.1
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
export PATH="$deps/bin:$PATH" PYTHONPATH="$deps${PYTHONPATH:+:$PYTHONPATH}"
