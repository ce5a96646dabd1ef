"""Plumbing every other package stands on: errors that name a file, row and field; atomic
writes; job logs; the config's reader and checks; the files handed between stages
(artifacts); and `job_params`, the one reader of the config for a workflow job. It
imports nothing else from `cec`."""
