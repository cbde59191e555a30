"""Run jobs through a batch scheduler's command-line tools, locally or on a submit host over ssh.

The work is split in three so each part can be tested alone: a *shell* runs a command somewhere
(:mod:`.shells`), a *scheduler* plugin builds the command lines and reads their output without
running anything (:mod:`.schedulers`), and :class:`.manager.CliManager` joins the two, adding
timeouts, retries and the rules that turn a scheduler's word into an LWR job state.
"""
