"""The pipeline's steps, one module per DAG task; the DAG files only wire them.

``run`` holds what every step shares: the run's context, the typed payloads XCom carries between
tasks, and the rule that an error a retry cannot fix fails the task at once.
"""
