"""Runs of CI servers that are not AWS (Jenkins, GitLab CI, Bitbucket Pipelines): the event they report, how a
report that is not signed with SigV4 is authenticated, and the EventBridge event it becomes."""
