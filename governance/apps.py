from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from governance import background, signals, tasks
        from governance.services import check_runs
        from governance.services.promotions import open_request_veto
        from registry.services import tier_lowering_vetoes

        signals.connect()
        background.connect()
        check_runs.execute_task = tasks.check_run_execute
        if open_request_veto not in tier_lowering_vetoes:
            tier_lowering_vetoes.append(open_request_veto)
