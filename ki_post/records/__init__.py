"""Akten-Export: finished circulars, archived Vorgänge and events as one ZIP for the e-Akte."""
