%%
start: %empty ;
%%
