"""The compile cache: ccache's settings shared by every variant, its remote storage and that URL's check."""
