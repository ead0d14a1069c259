"""Built-in plugins, registered before installed ones so that those can replace them."""

from kairos_core.builtin import demo, round_robin

PLUGINS: tuple[object, ...] = (round_robin, demo)
