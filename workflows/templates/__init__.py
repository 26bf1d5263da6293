"""WorkflowTemplates and CronWorkflows: one module each, each exposing one module-level Hera object."""
