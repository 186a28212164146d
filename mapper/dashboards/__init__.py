"""One panel catalogue (deploy/dashboards/panels.yaml) rendered as the Grafana and KubeSphere dashboards."""
