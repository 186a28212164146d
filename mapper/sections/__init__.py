"""Reading config sections: typed values by one rule, every problem collected, misspelt keys caught."""
