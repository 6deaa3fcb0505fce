"""Training dynamics of representations: the information plane (Shwartz-Ziv & Tishby 2017)."""

from .info_plane import (
    EnsembleMLP,
    InformationPlane,
    binned_information,
    compression,
    dpi_violation,
    log_epoch_grid,
    plot_information_plane,
    track_information_plane,
)

__all__ = [
    "EnsembleMLP",
    "InformationPlane",
    "binned_information",
    "compression",
    "dpi_violation",
    "log_epoch_grid",
    "plot_information_plane",
    "track_information_plane",
]
