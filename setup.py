"""Builds the extension tritter._tritter with this project's CMake (target tritter_python, Release flags, the
static libraries linked in) for the interpreter running pip, then lets setuptools package python/tritter.
TRITTER_BUILD_DIR picks the CMake build directory (default: build-python); CMAKE_ARGS adds CMake arguments."""
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.path.abspath(os.environ.get("TRITTER_BUILD_DIR", os.path.join(ROOT, "build-python")))
        configure = ["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DTRITTER_PYTHON=ON",
                     f"-DPython_EXECUTABLE={sys.executable}", "-DTRITTER_BUILD_TESTS=OFF",
                     "-DTRITTER_BUILD_BENCH=OFF"]
        if shutil.which("ninja") and not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            configure += ["-G", "Ninja"]  # a new directory; an existing one keeps its generator
        configure += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", build, "--target", "tritter_python", "-j", jobs], check=True)
        built = os.path.join(build, "python", "tritter")
        so = [f for f in os.listdir(built) if f.startswith("_tritter") and f.endswith(".so")]
        if len(so) != 1:
            raise RuntimeError(f"setup.py: expected one _tritter*.so in {built}, found {so}")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(built, so[0]), target)


setup(ext_modules=[Extension("tritter._tritter", sources=[])], cmdclass={"build_ext": CMakeBuild})
