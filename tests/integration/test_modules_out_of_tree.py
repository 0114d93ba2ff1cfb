"""Out of tree: install to a temporary prefix, make a module project with the installed
`sy-module new` (C and C++), build it with only the installed files, load it into a running
proxy and see it work."""
import subprocess

import pytest

import harness
from harness import request, run_switchyard
from modules_util import BUILD, with_filters


def run(args, cwd=None, timeout=600):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"{' '.join(map(str, args))} -> {out.returncode}\n" \
                                f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """The build, installed with cmake --install into a fresh prefix."""
    dest = tmp_path_factory.mktemp("prefix")
    run(["cmake", "--install", BUILD, "--prefix", dest])
    for f in ("bin/sy-module", "include/switchyard/module.h", "include/switchyard/sdk.hpp"):
        assert (dest / f).exists(), f"cmake --install did not install {f}"
    return dest


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_new_module_builds_against_installed_files_and_loads(tmp_path, prefix, upstream,
                                                             switchyard, lang):
    project = tmp_path / f"demo-{lang}"
    run([prefix / "bin" / "sy-module", "new", "demo", "--lang", lang, "--dir", project])
    assert (project / "CMakeLists.txt").exists(), sorted(p.name for p in project.iterdir())
    build = tmp_path / f"build-{lang}"
    # -j1: the machines this runs on may be small and busy.
    run(["cmake", "-S", project, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}",
         "-DCMAKE_BUILD_TYPE=Release"])
    run(["cmake", "--build", build, "-j1"])
    # Only the installed headers were used: the source tree's abi/ is nowhere in the build.
    cache = (build / "CMakeCache.txt").read_text()
    assert str(harness.REPO / "abi") not in cache
    built = sorted(build.rglob("libsy_demo.so"))
    assert len(built) == 1, f"expected one libsy_demo.so under {build}: {built}"

    sy = switchyard(with_filters(upstream.port, [{"module": "demo"}],
                                 modules=[{"name": "demo", "path": str(built[0])}]))
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200, r
    assert r.header("x-demo") == "hello", r.headers
    check = subprocess.run([str(prefix / "bin" / "sy-module"), "check", str(built[0])],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    # The README's config is complete: the module declared (watch included), the filter with
    # its keys, and the proxy accepts it as written (only the build folder differs here).
    readme = (project / "README.md").read_text()
    config = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    for key in ("modules:", "path: ./build/libsy_demo.so", "watch: true", "module: demo",
                "filter: demo", "config:"):
        assert key in config, f"{key!r} missing from the README's config:\n{config}"
    config_file = tmp_path / f"readme-{lang}.yaml"
    config_file.write_text(config.replace("./build/libsy_demo.so", str(built[0])) +
                           f"state_dir: {tmp_path / 'state'}\n")
    out = run_switchyard(["-c", config_file, "--validate"], cwd=project)
    assert out.returncode == 0, out.stdout + out.stderr
