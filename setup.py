"""Everything about the distribution is in pyproject.toml; this file only maps the repository's
shipped library (``personas/``, ``protocols/``, ``panels/``, ``routing/`` at the top level) into
the package as ``council/library/<kind>``, so a wheel carries it. The folders stay where they are
in the repository; an editable clone reads them in place (council/base/library_paths.py)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LIBRARY_KINDS = ("personas", "protocols", "panels", "routing")  # as in council/base/library_paths.py


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            for source in self._library_files():
                target = Path(self.build_lib, "council", "library", source)
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        library = Path(self.build_lib, "council", "library")
        return [*outputs, *(str(library / source) for source in self._library_files())]

    @staticmethod
    def _library_files() -> list[Path]:
        return sorted(f for kind in LIBRARY_KINDS for f in Path(kind).rglob("*") if f.is_file())


setup(cmdclass={"build_py": BuildWithLibrary})
