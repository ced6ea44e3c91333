"""Task families: one sub-package each, which registers its tasks, datasets and models when
imported. :func:`pointforge.registry.load_builtin` imports every sub-package found here, so a
new family is a new folder and nothing else (``docs/adding_a_task.md``)."""
