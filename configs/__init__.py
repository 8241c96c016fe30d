"""The shipped YAMLs (data, model and search-space configs), installed as package data.

Read them through litenas.resources.config_file, which lets a user's own file of the same
relative path win.
"""
