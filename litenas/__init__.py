"""litenas: what every layer shares (user input and its errors, the packaged configs, the user
cache) and the `litenas` console command.

search, runner and space import from here; nothing here imports them, apart from the console
command, which runs their CLI modules by name.
"""
