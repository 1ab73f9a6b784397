"""BancoEstado (Caja Vecina and Internet): debt query and payment notification contract."""
